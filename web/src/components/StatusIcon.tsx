import { statusIconSvg } from '../icons';
import type { Status } from '../types';

/** The status symbol, decorative: always placed next to the status in words. */
export function StatusIcon({ status, size = 20 }: { status: Status; size?: number }) {
  // The markup comes from our own constant shapes, never from data.
  return <span className="mw-icon" aria-hidden="true" dangerouslySetInnerHTML={{ __html: statusIconSvg(status, size) }} />;
}
