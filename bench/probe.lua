-- wrk script: a paced latency probe. Each connection waits 10 ms after every
-- answer before its next request (8 connections: at most 800 requests/s), so
-- the probe itself leaves the CPU to the work it watches (an upload, the
-- hasher) and its latencies show how that work delays other clients.
function delay()
  return 10
end
