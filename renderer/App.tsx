/** The window: sidebar, banners, the current screen, the path dialog; files dropped anywhere are opened. */
import { type DragEvent, memo, useCallback, useState } from 'react';
import { dropFiles } from './commands/library.js';
import { uploadDropped } from './commands/uploads.js';
import { dropEntries, readDrop } from './lib/dropped-files.js';
import { Banner } from './components/Banner.js';
import { ConnectionNotice } from './components/ConnectionNotice.js';
import { PathDialog } from './components/PathDialog.js';
import { Sidebar } from './components/Sidebar.js';
import { type Screen, useViewStore } from './stores/view.js';
import { CorpusRunView } from './views/CorpusRunView.js';
import { CorpusView } from './views/CorpusView.js';
import { LibraryView } from './views/LibraryView.js';
import { ModelsView } from './views/ModelsView.js';
import { ProbesView } from './views/ProbesView.js';
import { RunView } from './views/RunView.js';
import { RunsView } from './views/RunsView.js';

const screens: Record<Screen, () => React.JSX.Element> = {
  library: () => <LibraryView />,
  models: () => <ModelsView />,
  runs: () => <RunsView />,
  run: () => <RunView />,
  corpus: () => <CorpusView />,
  corpusRun: () => <CorpusRunView />,
  probes: () => <ProbesView />,
};

const hasFiles = (event: DragEvent) => event.dataTransfer.types.includes('Files');

export const App = memo(function App() {
  const screen = useViewStore((s) => s.screen);
  const [dragging, setDragging] = useState(false);
  const onDragOver = useCallback((event: DragEvent) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    setDragging(true);
  }, []);
  const onDrop = useCallback((event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    const files = [...event.dataTransfer.files];
    const entries = dropEntries(event.dataTransfer); // only readable during the event
    void dropFiles(files, () => readDrop(entries, files).then((d) => uploadDropped(d.folders, d.files)));
  }, []);
  return (
    <div className="app" data-testid="app" onDragOver={onDragOver} onDragLeave={() => setDragging(false)} onDrop={onDrop}>
      <Sidebar />
      <main className="main">
        <ConnectionNotice />
        <Banner />
        {screens[screen]()}
      </main>
      <PathDialog />
      {dragging && <div className="drop-overlay" aria-hidden="true">Drop books to open them, model folders to add them</div>}
    </div>
  );
});
