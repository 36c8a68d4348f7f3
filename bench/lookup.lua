-- wrk script: GET <base path>/<random id in 1..100000> (the lookup benchmark).
local base
init = function(args) base = wrk.path end
request = function()
    return wrk.format("GET", base .. "/" .. math.random(1, 100000))
end
