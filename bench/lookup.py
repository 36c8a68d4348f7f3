# The lookup benchmark handler: one row by its id from an imported 100,000-row table; the
# endpoint's path names the table (/lookup/keyed/{id}: imported with its id as primary key,
# /lookup/plain/{id}: the same rows without a key, so every lookup scans the table).
db = pq.dbconnect('dw')
SQL = {'keyed': 'SELECT * FROM bench.keyed WHERE id = ?',
       'plain': 'SELECT * FROM bench.plain WHERE nr = ?'}


def handler(request):
    p = request['params']
    return db.fetch('dw', query=SQL[p['table']], params=[int(p['id'])])
