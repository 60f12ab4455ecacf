/** A backend by name, with the GPU adapter behind it and a "software" badge where that adapter is a CPU emulation. */
import { memo } from 'react';
import type { BackendInfo } from '../../engine/protocol.js';
import { adapterName, backendDetails } from '../lib/placement.js';

export const BackendTag = memo(function BackendTag({ backend }: { readonly backend: BackendInfo }) {
  return (
    <span className="backend-tag" title={backendDetails(backend)}>
      <span className="strong">{backend.name}</span>
      {backend.adapter && <span className="muted"> ({adapterName(backend.adapter)})</span>}
      {backend.adapter?.software && <span className="badge badge-warn">software</span>}
    </span>
  );
});
