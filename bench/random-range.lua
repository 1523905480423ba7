-- wrk script: every request asks for a different random 64 KiB slice of a file.
-- BENCH_FILE_SIZE (bytes, env) is the size of the file under test.
local size = tonumber(os.getenv("BENCH_FILE_SIZE") or "") or 104857600
local slice = 65536
local counter = 0

-- Runs in the main Lua state once per thread: give each thread its own seed.
function setup(thread)
  counter = counter + 1
  thread:set("thread_seed", counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_seed or 0))
end

function request()
  local first = math.random(0, size - slice)
  return wrk.format(nil, nil, { ["Range"] = "bytes=" .. first .. "-" .. (first + slice - 1) })
end
