-- wrk script: POST a 600-byte JSON body (application/json), random x-user-id per request
method = "POST"
body_bytes = 600
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "random-user.lua")
