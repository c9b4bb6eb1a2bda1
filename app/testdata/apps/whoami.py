"""A Plotly dashboard on Flask, as a team would put behind Gatehouse.

The page greets the viewer Gatehouse names in X-Forwarded-User and shows a
Plotly chart; /whoami.json shows every header the app received as the WSGI
environ holds it (where X_Forwarded_User and X-Forwarded-User meet), and
the names of the cookies it was sent. app/apps_upstreams_test.go starts it
as `python3 whoami.py` and reads the address from its first line.
"""

import html

import plotly.graph_objects as go
import plotly.io as pio
from flask import Flask, request
from werkzeug.serving import make_server

app = Flask(__name__)


@app.get("/")
def page():
    user = request.headers.get("X-Forwarded-User", "nobody")
    fig = go.Figure(go.Bar(x=["north", "south"], y=[3, 5]))
    chart = pio.to_html(fig, full_html=False, include_plotlyjs=False)
    return (
        "<!doctype html><title>Sales by region</title>"
        f"<h1>Signed in as {html.escape(user)}</h1>{chart}"
    )


@app.get("/whoami.json")
def whoami():
    return {
        "environ": {k: v for k, v in request.environ.items() if k.startswith("HTTP_")},
        "cookies": sorted(request.cookies),
    }


if __name__ == "__main__":
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"listening on http://127.0.0.1:{server.socket.getsockname()[1]}", flush=True)
    server.serve_forever()
