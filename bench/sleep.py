# The blocking benchmark's handler: waits half a second (a partner's API, a slow query).
import time


def handler(request):
    time.sleep(0.5)
    return {"slept": 0.5}
