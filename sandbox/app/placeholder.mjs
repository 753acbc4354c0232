// Light placeholder for the CloudBox services the rotation never talks to
// (redis, frontend, glitchtip, ...): stays up until SIGTERM/SIGINT.
const name = process.argv[2] || 'service'
console.log(`${new Date().toISOString()} [${name}] placeholder started`)
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0))
setInterval(() => {}, 1 << 30)
