// Redaction of text that may carry secrets before it is logged, put in an
// issue, summary or output (pure).
//
// 1. every occurrence of each known secret (8 characters or more; also its
//    URL-encoded form) becomes `***`;
// 2. JWT-looking tokens (`eyJ….….…`) become `<jwt>`;
// 3. any remaining base64- or hex-looking run of 32 characters or more
//    becomes `<redacted>`. "Looking" means: only base64/base64url characters
//    and at least one digit or both letter cases, so long lowercase words and
//    paths such as `/usr/lib/node_modules/jsonwebtoken/verify` stay readable
//    while random material (which nearly always mixes cases and digits) goes.
//    UUIDs (record ids in request logs) are kept.

const MIN_SECRET_LENGTH = 8

const JWT = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g
const RUN = /[A-Za-z0-9+/_-]{32,}={0,2}/g

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function looksRandom(run: string): boolean {
  if (UUID.test(run)) return false // ids in request logs, not secrets
  if (/^[0-9a-fA-F]+$/.test(run)) return true
  return /[0-9]/.test(run) || (/[a-z]/.test(run) && /[A-Z]/.test(run))
}

/**
 * Step 1 only: every known secret becomes `***`. For text whose shape the
 * action knows (its own messages quoting host output), where paths and ids
 * must stay readable.
 */
export function redactValues(text: string, secrets: string[]): string {
  const needles = new Set<string>()
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) continue
    needles.add(secret)
    const encoded = encodeURIComponent(secret)
    if (encoded !== secret) needles.add(encoded)
  }
  let out = text
  for (const needle of [...needles].sort((a, b) => b.length - a.length)) {
    out = out.split(needle).join('***')
  }
  return out
}

export function redact(text: string, secrets: string[]): string {
  let out = redactValues(text, secrets)
  out = out.replace(JWT, '<jwt>')
  out = out.replace(RUN, (run) => (looksRandom(run) ? '<redacted>' : run))
  return out
}
