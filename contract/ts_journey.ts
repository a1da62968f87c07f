// A TypeScript client: types generated from openapi/openapi.json by
// openapi-typescript (out/typescript/wemaster.d.ts), calls made with
// openapi-fetch. `tsc` type-checks this file against the generated types
// (strict), then the compiled file runs against the server.
//
// Usage (after tsc -p contract): node contract/out/ts/ts_journey.js BASE_URL

import createClient from "openapi-fetch";
import type { components, paths } from "./out/typescript/wemaster.js";

declare const process: { argv: string[]; exitCode?: number };

type Offering = components["schemas"]["Offering"];
type OrderStatus = components["schemas"]["OrderStatus"];

const base = process.argv[2];
let passed = 0;
function ok(text: string): void {
  passed += 1;
  console.log(`  ok ${String(passed).padStart(2)}. ${text}`);
}
function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

const api = createClient<paths>({ baseUrl: `${base}/api/v1` });

try {
  const list = await api.GET("/offerings", { params: { query: { q: "python", limit: 3, sort: "price" } } });
  check(list.response.status === 200 && list.data, `list: ${list.response.status}`);
  const offerings: Offering[] = list.data;
  check(offerings.length > 0 && offerings.length <= 3, `list: ${offerings.length} offerings`);
  const prices = offerings.map((o) => o.priceFrom.amount);
  check(prices.every((p, i) => i === 0 || prices[i - 1] <= p), `sort=price: ${prices}`);
  ok(`GET /offerings?q=python&sort=price: ${offerings.map((o) => o.slug).join(", ")}`);

  const login = await api.POST("/auth/login", { body: { email: "student@test.com", password: "password123" } });
  check(login.data, `login: ${login.response.status}`);
  const tokenType: "Bearer" = login.data.tokenType;
  ok(`POST /auth/login: ${tokenType} token for ${login.data.user.email} (${login.data.user.role})`);

  const buyer = createClient<paths>({
    baseUrl: `${base}/api/v1`,
    headers: { Authorization: `Bearer ${login.data.accessToken}` },
  });
  const offering = offerings[0];
  const draft = await buyer.POST("/orders/draft", {
    body: { offeringId: offering.id, variantId: offering.variants[0].id },
  });
  check(draft.response.status === 201 && draft.data, `draft: ${draft.response.status}`);
  const status: OrderStatus = draft.data.status;
  check(status === "PENDING_PAYMENT", `draft status ${status}`);
  check(draft.data.amount === offering.variants[0].price, "amount is the variant's price");
  ok(`POST /orders/draft: ${draft.data.id} ${status} ${draft.data.amount} ${draft.data.currency}`);

  const read = await buyer.GET("/orders/{id}", { params: { path: { id: draft.data.id } } });
  check(read.data?.id === draft.data.id, "GET /orders/{id} returns the order");
  ok("GET /orders/{id}: the same order");

  const wrong = await api.POST("/auth/login", { body: { email: "student@test.com", password: "wrong password" } });
  check(wrong.response.status === 401 && wrong.error, `wrong password: ${wrong.response.status}`);
  const code: string = wrong.error.code;
  check(code === "AUTH_INVALID_CREDENTIALS", code);
  ok(`a wrong password: typed problem ${code}`);

  console.log(`ts-journey: ${passed} passed, 0 failed`);
} catch (e) {
  console.error(`FAIL ${(e as Error).message}`);
  console.log(`ts-journey: ${passed} passed, 1 failed`);
  process.exitCode = 1;
}
