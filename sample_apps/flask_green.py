"""The fixed twin of ``flask_brown``: compact JSON responses, encoded by the C encoder.

Flask's default (``app.json.compact`` left as ``None``) is compact outside debug mode. Must not
trigger ``json-serialization-hot``.
"""

from __future__ import annotations

from ._orders_api import create_app, serve

app = create_app(compact=None)

if __name__ == "__main__":
    serve(app)
