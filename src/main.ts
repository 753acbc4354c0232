import * as core from '@actions/core'
import { readConfig } from './config.js'

export async function run(): Promise<void> {
  try {
    const config = readConfig((name) => core.getInput(name))
    core.info(`Rotating ${config.keys.map((k) => k.envKey).join(', ')} on ${config.ssh.host}`)
  } catch (error) {
    core.setFailed(error instanceof Error ? error.message : String(error))
  }
}
