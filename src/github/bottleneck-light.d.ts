// bottleneck ships types only for its main entry; the throttling plugin (and
// this module) use the light build, which has the same API minus clustering.
declare module 'bottleneck/light.js' {
  import Bottleneck from 'bottleneck'
  export default Bottleneck
}
