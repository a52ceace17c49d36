import 'leaflet/dist/leaflet.css';
import './styles.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { earlyLiveDeps } from './earlySocket';
import { liveUrl } from './live';
import { Root } from './Root';

const root = document.getElementById('root');
if (root === null) throw new Error('index.html has no #root element');
// The live snapshot is on its way while the page checks its login and renders (earlySocket.ts).
const deps = earlyLiveDeps(liveUrl(window.location));
createRoot(root).render(
  <StrictMode>
    <Root deps={deps} />
  </StrictMode>,
);
