// Report: checklist and issue rendering (pure), job summary, outputs.
export { checklist, renderChecklist, CHECKLIST_TEXTS } from './checklist.js'
export type { ChecklistItem } from './checklist.js'
export { issueTitle, issueBody } from './issue.js'
export { summaryMarkdown, writeJobSummary } from './summary.js'
export { setOutputs, outputValues } from './outputs.js'
