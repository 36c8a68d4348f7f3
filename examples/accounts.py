# accounts.py - the dict-style handler of DESIGN §2: returns warehouse dw_2's salesforce.accounts.
def handler(request):              # dict style (current)
    headers = request['headers']
    client = headers.get("X-Api-Client", None)
    dbconn = pq.dbconnect('dw_2')
    return dbconn.fetch('dw_2', 'salesforce', 'accounts')
