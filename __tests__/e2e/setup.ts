import { jest } from '@jest/globals'

// A rotation against the sandbox takes tens of seconds; a whole fault suite minutes.
jest.setTimeout(240000)
