"""The online service hall (网上服务大厅): applicants and experts in the browser, with scans.

FastAPI with server-rendered pages (Jinja2, Simplified Chinese, mobile-first) and a JSON API
under ``/api``. Every expert action is the same Temporal Update, with the same validator, as
the CLI's (:func:`chronic.cli.output.send_update`), so a refusal reads the same everywhere.

Modules: :mod:`.app` (the app factory), :mod:`.security` (keys, tokens, CSRF, passwords),
:mod:`.accounts` (staff accounts), :mod:`.signin` (applicants' one-time codes and rate limits),
:mod:`.sessions` (who is signed in), :mod:`.cases` (what a person may see and do),
:mod:`.applying` (an applicant's application and resubmission with uploaded scans),
:mod:`.pages` (the HTML routes), :mod:`.api` (the JSON routes) and :mod:`.load` (the load check).
"""
