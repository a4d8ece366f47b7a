// Where the tests run: the repository root, and the Redis every test shares (a test
// that kills Redis starts its own with services/dev/redis.ts).
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
