# The rows benchmark handler for uWSGI: the same query on the same SQLite file with Python's
# sqlite3, rows as dicts, serialised with json.dumps. BENCH_DB names the schema file.
import json
import os
import sqlite3

DB = sqlite3.connect(os.environ["BENCH_DB"], check_same_thread=False)
QUERY = "SELECT * FROM items WHERE id > 50000 ORDER BY id LIMIT 100"


def handler(request):
    cur = DB.execute(QUERY)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur]


def application(environ, start_response):
    request = {"method": environ["REQUEST_METHOD"], "path": environ["PATH_INFO"],
               "query_string": environ.get("QUERY_STRING", "")}
    body = json.dumps(handler(request)).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
