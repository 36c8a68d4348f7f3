# The same handler for uWSGI (WSGI), serialised with the standard json module.
import json


def handler(request):
    return {"status": "ok", "message": "hello", "n": 42}


def application(environ, start_response):
    request = {"method": environ["REQUEST_METHOD"], "path": environ["PATH_INFO"],
               "query_string": environ.get("QUERY_STRING", ""),
               "headers": {k[5:].replace("_", "-").title(): v
                           for k, v in environ.items() if k.startswith("HTTP_")}}
    body = json.dumps(handler(request)).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
