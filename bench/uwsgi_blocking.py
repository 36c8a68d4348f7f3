# The blocking section's two handlers for uWSGI (WSGI): /sleep waits half a second, anything
# else is hello; both answer a small JSON body as Portico's do.
import json
import time


def application(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(0.5)
        body = json.dumps({"slept": 0.5}).encode()
    else:
        body = json.dumps({"status": "ok", "message": "hello", "n": 42}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
