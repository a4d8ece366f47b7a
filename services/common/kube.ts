// Kubernetes client factory: a kubeconfig file when one is given, the pod's
// service account when running in a cluster, else the user's default kubeconfig.
import fs from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';

export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath) {
    if (!fs.existsSync(kubeconfigPath)) throw new Error(`kubeconfig file not found: ${kubeconfigPath}`);
    kc.loadFromFile(kubeconfigPath);
  } else if (process.env.KUBERNETES_SERVICE_HOST && fs.existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token')) {
    kc.loadFromCluster();
  } else {
    kc.loadFromDefault();
  }
  if (!kc.getCurrentCluster()) throw new Error('no Kubernetes cluster configured: set KUBECONFIG or --kubeconfig, or run in a cluster');
  return kc;
}
