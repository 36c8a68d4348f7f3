# `portico run` script: the 100,000-row table of the rows benchmark (schema bench, table items).
db = pq.dbconnect('dw')
db.create_schema('dw', 'bench')
db.execute('dw', query='DROP TABLE IF EXISTS bench.items')
db.execute('dw', query='CREATE TABLE bench.items (id INTEGER PRIMARY KEY, name TEXT, email TEXT, '
                       'amount REAL, created TEXT, active BOOLEAN)')
db.execute('dw', query="""
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
INSERT INTO bench.items
SELECT x, 'customer ' || x, 'user' || x || '@example.com', x * 1.25,
       '2024-01-01 00:00:00', x % 2 FROM c""")
print(db.fetch('dw', query='SELECT count(*) AS n FROM bench.items')[0]['n'], 'rows')
