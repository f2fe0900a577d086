/** Linux cpuset lists ("0-3,8,10-11"), as taskset, cgroups and Slurm write them. */

export function formatCpuset(cores: readonly number[]): string {
  const sorted = [...new Set(cores)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] ?? 0) + 1) j += 1;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/** Parses a cpuset list; throws on anything else. */
export function parseCpuset(text: string): number[] {
  const trimmed = text.trim();
  if (trimmed === "") return [];
  const cores: number[] = [];
  for (const part of trimmed.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (m === null) throw new Error(`"${text}" is not a cpuset list such as 0-3,8`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw new Error(`"${part}" in "${text}" is a descending range`);
    for (let c = from; c <= to; c += 1) cores.push(c);
  }
  return [...new Set(cores)].sort((a, b) => a - b);
}
