# dunscan HTTP service. Build: docker build -t dunscan .   Run: docker run -p 8000:8000 dunscan
# Same install as the README (`pip install -c constraints.txt -e .`), without the dev tools.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 dunscan
WORKDIR /app

# Dependencies first, from the pinned set, so a code change does not reinstall them.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
# Optional extras, e.g. the PostgreSQL driver (docker-compose.yml passes "psycopg[binary]>=3.1").
ARG EXTRA_PACKAGES=""
RUN if [ -n "$EXTRA_PACKAGES" ]; then pip install -c constraints.txt $EXTRA_PACKAGES; fi

# The package, its data (rules, number lists) and the shipped model; editable, as in the README,
# so the package finds rules/ and model/ beside it.
COPY README.md ./
COPY service ./service
COPY rules ./rules
COPY model ./model
RUN pip install --no-deps -c constraints.txt -e . \
    && python -c "from service.pipeline import Analyzer; Analyzer.load()" \
    && mkdir -p /app/instance && chown dunscan /app/instance

# Hooks and pending pushes live in instance/dunscan.sqlite3; mount a volume there to keep them
# across containers (or set DUNSCAN_DATABASE_URL to a PostgreSQL URL).
VOLUME ["/app/instance"]
USER dunscan
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# Workers follow the container's CPUs; override with -e WEB_CONCURRENCY=N. SIGTERM drains in-flight
# requests (graceful_timeout in service/gunicorn_conf.py).
STOPSIGNAL SIGTERM
CMD ["gunicorn", "--config", "service/gunicorn_conf.py", "--bind", "0.0.0.0:8000", "service:create_app()"]
