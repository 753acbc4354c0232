// Redaction that leaves the host's own known paths readable (pure). Step 3 of
// redact() blanks any 32+ character run of base64 characters, and '/' is one:
// a deploy path such as /srv/apps/Cloudbox2/shared/ is such a run, so a
// journal's `path=` detail (the backup the operator restores from) would be
// lost. The known paths are set aside, the rest is redacted, then they return.
import { redact } from '../redact.js'

export function redactKeepingPaths(text: string, secrets: string[], paths: string[]): string {
  // Longest first; a path that holds a secret is not kept (it is redacted).
  const kept = [...new Set(paths)]
    .filter((p) => p.length > 1 && !secrets.some((s) => s.length >= 8 && p.includes(s)))
    .sort((a, b) => b.length - a.length)
  let out = text
  kept.forEach((p, i) => {
    out = out.split(p).join(`\u0000${i}\u0000`)
  })
  out = redact(out, secrets)
  kept.forEach((p, i) => {
    out = out.split(`\u0000${i}\u0000`).join(p)
  })
  return out
}
