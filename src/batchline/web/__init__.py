"""The web dashboard and REST API (`batchline serve`, the ``web`` extra).

- ``app.py``: ``create_app(engine, tokens)``, the FastAPI application: API, pages, static files,
  security headers, the ``/metrics`` hook;
- ``auth.py``: tokens (bearer header or the browser's session cookie), scopes, CSRF;
- ``problems.py``: errors as problem+json, with the CLI's messages;
- ``models.py``: the API's response schemas; ``api.py``: the REST routes; ``forms.py``: the
  inputs the API and pages share (filters, parameters); ``pages.py``: the server-rendered pages.

Nothing here is imported by ``import batchline``.
"""
