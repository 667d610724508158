"""gunicorn's configuration: `python -m gunicorn -c connectors_site/gunicorn_conf.py`.

Threaded workers (gthread): WEB_WORKERS processes (default 2) of WEB_THREADS threads (default
4), listening on WEB_BIND (default 127.0.0.1:8000; `--bind` overrides it). The app is loaded in
each worker, after the fork (no preload: each worker's sandboxes and Spark manager are its own).
Logs go through the project's format (connectors_site.logs; LOG_FORMAT=json for JSON lines),
gunicorn's own and the access log included.

Stopping: SIGTERM (systemd, `make run`) lets workers finish their requests for up to
`graceful_timeout`; SIGINT or SIGQUIT stop them at once. Either way a worker that started the
local Spark Connect server stops it as it exits (`worker_exit`), and its sandboxes end with it.
"""

from __future__ import annotations

import os
import sys

from connectors_site.logs import logging_config


def _count(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise SystemExit(f"{name} must be at least 1, not {value}")
    return value


wsgi_app = "connectors_site.wsgi:application"
bind = [os.environ.get("WEB_BIND", "127.0.0.1:8000")]
worker_class = "gthread"
workers = _count("WEB_WORKERS", 2)
threads = _count("WEB_THREADS", 4)
# A worker that answers nothing for this long is restarted; gthread workers stay responsive
# while their threads run long previews.
timeout = 60
# On SIGTERM: time for running requests (a preview waits up to PREVIEW_TIMEOUT_S) and the local
# Spark server's stop, after which the master kills what is left.
graceful_timeout = 45
# One format for everything: no handlers of gunicorn's own, the access log included.
logconfig_dict = logging_config(
    os.environ.get("LOG_FORMAT", "text").strip().lower() or "text",
    os.environ.get("LOG_LEVEL", "INFO"),
)
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms'
# No control socket (gunicornc): it would be one file in the home directory for every instance.
control_socket_disable = True


def worker_exit(server, worker) -> None:
    """Stop the local Spark Connect server if this worker started it (atexit does it again,
    harmlessly, unless the worker is killed)."""
    engine_config = sys.modules.get("connectors_site.engine_config")
    if engine_config is not None:  # otherwise this worker never used Spark
        engine_config.spark_stop_if_owned()
