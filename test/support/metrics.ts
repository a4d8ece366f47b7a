// Reading a process's /metrics from outside it (child processes have no registry to ask).

/** The sum of every sample of `name`, over all its label sets, in a Prometheus text exposition. */
export function sumSamples(exposition: string, name: string): number {
  let sum = 0;
  for (const line of exposition.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
