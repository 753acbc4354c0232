import { describe, expect, it } from '@jest/globals'
import sodium from 'libsodium-wrappers'
import { sealSecret } from '../../src/github/seal.js'

const b64 = (bytes: Uint8Array): string => sodium.to_base64(bytes, sodium.base64_variants.ORIGINAL)

describe('sealSecret', () => {
  it('seals so that the key pair owner opens exactly the value', async () => {
    await sodium.ready
    const pair = sodium.crypto_box_keypair()
    const value = 'k3y+/with=base64/chars and ünïcode'
    const sealed = await sealSecret(value, b64(pair.publicKey))
    expect(sealed).toMatch(/^[A-Za-z0-9+/]+={0,2}$/)
    const opened = sodium.crypto_box_seal_open(
      sodium.from_base64(sealed, sodium.base64_variants.ORIGINAL),
      pair.publicKey,
      pair.privateKey,
      'text'
    )
    expect(opened).toBe(value)
  })

  it('produces a fresh ciphertext each time', async () => {
    await sodium.ready
    const pair = sodium.crypto_box_keypair()
    const a = await sealSecret('same', b64(pair.publicKey))
    const b = await sealSecret('same', b64(pair.publicKey))
    expect(a).not.toBe(b)
  })

  it('cannot be opened with another key pair', async () => {
    await sodium.ready
    const pair = sodium.crypto_box_keypair()
    const other = sodium.crypto_box_keypair()
    const sealed = await sealSecret('value', b64(pair.publicKey))
    expect(() =>
      sodium.crypto_box_seal_open(
        sodium.from_base64(sealed, sodium.base64_variants.ORIGINAL),
        other.publicKey,
        other.privateKey
      )
    ).toThrow()
  })

  it('refuses a malformed public key without echoing the value', async () => {
    await expect(sealSecret('s3cret-value', 'not base64!')).rejects.toThrow(/not valid base64/)
    await expect(sealSecret('s3cret-value', 'AAAA')).rejects.toThrow(/3 bytes long, expected 32/)
    await expect(sealSecret('s3cret-value', 'AAAA')).rejects.not.toThrow(/s3cret/)
  })
})
