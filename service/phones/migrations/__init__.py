"""Alembic migrations of the project's database (hooks, seen requests, the push outbox).

`service.phones.store.Store` runs them at start-up (`upgrade head`), so nobody runs a command;
they ship inside the package, so an installed wheel migrates too. A new revision after a model
change:

    .venv/bin/alembic -c service/phones/migrations/alembic.ini \
        revision --autogenerate -m "what changed"

with `DUNSCAN_DATABASE_URL` pointing at a database at the previous head. tests/test_store.py
fails while the models and the migrations disagree.
"""
