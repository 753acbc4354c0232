/**
 * The entrypoint of the post step (action.yml runs.post): finishes the report
 * of a main step that was cancelled or killed. See post.ts.
 */
import { runPost } from './post.js'

void runPost()
