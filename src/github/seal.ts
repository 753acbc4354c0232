// Sealing a secret for GitHub: libsodium crypto_box_seal against the scope's
// public key, base64 (original variant) in and out.

import sodium from 'libsodium-wrappers'

export async function sealSecret(value: string, publicKeyBase64: string): Promise<string> {
  await sodium.ready
  let key: Uint8Array
  try {
    key = sodium.from_base64(publicKeyBase64, sodium.base64_variants.ORIGINAL)
  } catch {
    throw new Error('the public key is not valid base64')
  }
  if (key.length !== sodium.crypto_box_PUBLICKEYBYTES) {
    throw new Error(
      `the public key is ${key.length} bytes long, expected ${sodium.crypto_box_PUBLICKEYBYTES}`
    )
  }
  const sealed = sodium.crypto_box_seal(sodium.from_string(value), key)
  return sodium.to_base64(sealed, sodium.base64_variants.ORIGINAL)
}
