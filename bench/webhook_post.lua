-- wrk script: POST a 1 KiB JSON event (bench/run.sh, webhook section).
local pad = string.rep("x", 1024 - 64)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"event": "order.created", "id": 12345, "padding": "' .. pad .. '"}'
