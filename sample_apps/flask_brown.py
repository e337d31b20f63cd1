"""A Flask service that pretty-prints every JSON response (``app.json.compact = False``).

With ``indent`` set, ``json.dumps`` cannot use its C encoder and runs the pure-Python one for
every value of every response. Triggers ``json-serialization-hot`` (a service: request context
from Flask's ``Flask.wsgi_app`` frame); ``flask_green`` is the fixed twin. Profile it under load::

    greenflame run --out flask_brown.json -- python -m greenflame.sample_apps.flask_brown --port 8081 &
    python -m greenflame.sample_apps.load http://127.0.0.1:8081/customers/c-7/orders --requests 300
    kill %1    # the profile is written when the service exits
"""

from __future__ import annotations

from ._orders_api import create_app, serve

app = create_app(compact=False)  # "readable JSON for whoever calls the API"

if __name__ == "__main__":
    serve(app)
