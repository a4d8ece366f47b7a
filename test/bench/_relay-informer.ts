// The comparison relay for `test/bench/relay.ts`: what one would write with
// @kubernetes/client-node's informer. It lists all Secrets in one request, keeps
// every object in the informer's cache, and adds a job per event with the same
// queue contract as kreconcile. Run as a child process so its memory is its own.
import { CoreV1Api, makeInformer, type V1Secret } from '@kubernetes/client-node';
import { Queue } from 'bullmq';
import { hashTaggedPrefix, JOB_NAME, jobOptions, redisConnection, type ReconcileJobData } from '../../services/common/queue.ts';
import { loadKubeConfig } from '../../services/common/kube.ts';

const kc = loadKubeConfig(process.env.KUBECONFIG);
const core = kc.makeApiClient(CoreV1Api);
const queue = new Queue<ReconcileJobData>(process.env.QUEUE_NAME!, { connection: redisConnection(process.env.REDIS_URL!), prefix: hashTaggedPrefix(process.env.QUEUE_PREFIX!) });

function enqueue(type: ReconcileJobData['reason'], s: V1Secret): void {
  const key = `Secret/${s.metadata?.namespace}/${s.metadata?.name}`;
  // ioredis pipelines concurrent commands by itself; awaiting each add would only slow this relay down.
  void queue.add(JOB_NAME, { key, reason: type, resourceVersion: s.metadata?.resourceVersion, seenAt: Date.now() }, jobOptions(key)).catch((err: Error) => console.error(err.message));
}

const informer = makeInformer(kc, '/api/v1/secrets', () => core.listSecretForAllNamespaces());
informer.on('add', (s) => enqueue('ADDED', s));
informer.on('update', (s) => enqueue('MODIFIED', s));
informer.on('delete', (s) => enqueue('DELETED', s));
informer.on('error', (err) => {
  console.error('informer error', (err as Error)?.message ?? err);
  setTimeout(() => void informer.start(), 1000);
});
await informer.start();
console.error(`informer synced: ${informer.list().length} objects cached`);
process.on('SIGTERM', () => process.exit(0));
