"""A Flask app with two endpoints of known CPU cost, for gunicorn.

  GET /heavy   spins 3 ms of CPU time in heavy_handler
  GET /light   spins 1 ms of CPU time in light_handler

Serve it with: gunicorn -w 2 -b 127.0.0.1:PORT --chdir tests/apps flask_app:app
"""
from flask import Flask

from wsgi_split import spin  # CPU time, not wall time

app = Flask(__name__)


@app.route("/heavy")
def heavy_handler():
    return "heavy %d\n" % spin(0.003)


@app.route("/light")
def light_handler():
    return "light %d\n" % spin(0.001)
