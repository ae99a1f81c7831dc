-- wrk script of `cargo xtask bench overhead --post-json`: every request POSTs an order of
-- about 1 KiB of JSON to /upload whose string values no earlier request carried (the
-- thread's number and a per-thread counter are in each), so detection judges fresh values
-- every time, as it would on a real API's traffic.
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local n = 0
local headers = { ["Content-Type"] = "application/json" }

function request()
  n = n + 1
  local id = string.format("%d-%d", tid, n)
  local items = {}
  for i = 1, 8 do
    items[i] = string.format(
      '{"sku":"SKU-%s-%04d","name":"Stainless steel water bottle %s/%d","quantity":%d,"unit_price":19.99}',
      id, i, id, i, i)
  end
  local body = string.format(
    '{"order_id":"3f6c2a9e-8b1d-4c6e-9f2a-%s","customer":{"name":"Siobhan O\'Brien %s",' ..
    '"email":"siobhan.obrien%s@example.com","phone":"+1-202-555-%04d"},"items":[%s],' ..
    '"shipping":{"street":"%s Wallaby Way","city":"Sydney","country":"AU","postcode":"2000"},' ..
    '"note":"Leave it at the door, please #%s","coupon":null,"gift":false}',
    id, id, id, n % 10000, table.concat(items, ","), id, id)
  return wrk.format("POST", "/upload", headers, body)
end
