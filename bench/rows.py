# The rows benchmark handler: 100 rows of a 100,000-row warehouse table, returned as fetch()
# gives them (served from the cursor in C).
db = pq.dbconnect('dw')


def handler(request):
    return db.fetch('dw', query='SELECT * FROM bench.items WHERE id > 50000 ORDER BY id LIMIT 100')
