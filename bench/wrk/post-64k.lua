-- wrk script: POST a 64 KiB JSON body (application/json), random x-user-id per request
method = "POST"
body_bytes = 65536
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "random-user.lua")
