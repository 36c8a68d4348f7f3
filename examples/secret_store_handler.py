# secret_store_handler.py - Peliqan's "one Secret Store per consumer" pattern, on a public
# endpoint: every consumer has a secret named after it holding its API key; the consumer sends
# both in headers and the handler compares them before returning data.
#
#   portico secret set partner-a            # type the key partner-a will send
#   portico script add accounts_by_secret examples/secret_store_handler.py
#   portico endpoint add accounts_by_secret --path /partner/accounts \
#       --script accounts_by_secret --auth public
#   curl -H 'X-Api-Client: partner-a' -H 'X-Api-Key: ...' http://127.0.0.1:8080/partner/accounts
#
# Portico's built-in `--auth apikey` does the same in C, before any Python runs, and stores
# only a keyed hash of each key (docs/SECURITY.md).


def handler(request):
    headers = request['headers']
    api_client = headers.get("X-Api-Client", None)
    api_key = headers.get("X-Api-Key", None)
    if not api_client or not api_key:
        return {'status': 'unauthorized'}
    try:
        expected_key = pq.get_secret(api_client)
    except KeyError:  # no secret for this consumer (pq.SecretNotFound)
        return {'status': 'unauthorized'}
    if expected_key != api_key:
        return {'status': 'unauthorized'}
    dbconn = pq.dbconnect('dw_2')
    return dbconn.fetch('dw_2', 'salesforce', 'accounts')
