# The benchmark handler: a small dict, as in issue #2's performance target.
def handler(request):
    return {"status": "ok", "message": "hello", "n": 42}
