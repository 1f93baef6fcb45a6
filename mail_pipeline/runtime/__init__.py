"""The running system seen from outside Dagster: stopping the child processes the product and its
test harness start (`processes.py`), and asking the Dagster webserver for runs over its GraphQL
API (`webserver.py`). Plain: no Dagster import, so the watcher and the CLI share it."""
