"""Serve registered models over HTTP: batching, hot swap, validation, auth, prediction log.

``driftloop serve`` runs :func:`serve`; :func:`create_app` builds the ASGI app for any server.
"""

from driftloop.serve.app import create_app
from driftloop.serve.auth import create_key, list_keys, revoke_key
from driftloop.serve.batcher import Batcher, QueueFull
from driftloop.serve.export import export_edge_package
from driftloop.serve.server import BackgroundServer, serve

__all__ = [
    "BackgroundServer",
    "Batcher",
    "QueueFull",
    "create_app",
    "create_key",
    "export_edge_package",
    "list_keys",
    "revoke_key",
    "serve",
]
