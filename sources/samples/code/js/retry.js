/**
 * Call an async function until it succeeds, waiting longer after each failure.
 * @param {() => Promise<any>} fn the operation to retry
 * @param {{attempts?: number, baseMs?: number}} options
 */
export async function retry(fn, { attempts = 5, baseMs = 100 } = {}) {
  let lastError;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      return await fn();
    } catch (error) {
      lastError = error;
      const delay = baseMs * 2 ** attempt + Math.random() * baseMs;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  throw lastError;
}
