// GET /health until latentd's model serves: while it loads latentd answers 503 {"status": "loading", "model":
// {...}} with Retry-After, then 200 "ok"; a failed load (503 "error") rejects with its message. Polls the
// condition; the bound only turns a hang into a failure.
export async function untilServing(url, fetchFn = fetch, boundMs = 120_000) {
  const t0 = Date.now();
  for (;;) {
    const res = await fetchFn(url);
    if (res.status === 200) return res;
    const body = await res.json();
    if (body.status !== 'loading') throw new Error(`${url}: expected the model to load, found ${JSON.stringify(body)}`);
    if (Date.now() - t0 > boundMs) throw new Error(`${url}: still loading after ${boundMs} ms: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
