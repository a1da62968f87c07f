# Emits a wrk Lua script cycling through 30,000 correctly signed, distinct
# payment_intent.succeeded events for unknown orders (recorded and acknowledged).
import hmac, hashlib, json, time
secret = b"whsec_dev_only_change_me"
t = int(time.time())
print("local reqs = {}")
for i in range(30000):
    body = json.dumps({"id": f"evt_perf_{t}_{i}", "type": "payment_intent.succeeded", "created": t,
        "data": {"object": {"id": f"pi_perf_{t}_{i}", "amount": 100, "currency": "usd", "metadata": {"orderId": f"perf-{i}"}}}}, separators=(",", ":"))
    sig = hmac.new(secret, f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
    print(f"reqs[{i+1}] = wrk.format('POST', nil, {{['Content-Type']='application/json', ['Stripe-Signature']='t={t},v1={sig}'}}, [[{body}]])")
print("local n = 0")
print("request = function() n = n % #reqs + 1; return reqs[n] end")
