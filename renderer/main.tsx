/** Entry point: pick the transport (desktop IPC or web-mode WebSocket), connect the stores, render. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import type { WorkbenchApi } from '../electron/api.js';
import { App } from './App.js';
import { connect, listenForAppCommands } from './commands/connect.js';
import { setConnectionStatus } from './stores/connection.js';
import { detectTransport } from './transport/index.js';
import './styles.css';

const workbench = (window as { workbench?: WorkbenchApi }).workbench;
const transport = detectTransport({ workbench, location: window.location });
if ('error' in transport) setConnectionStatus('disconnected', transport.error);
else connect(transport);
if (workbench) listenForAppCommands(workbench);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
