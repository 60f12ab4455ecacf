import { describe, expect, it } from 'vitest';
import { reportHtml } from './report-html.js';

describe('the HTML report', () => {
  const html = reportHtml({
    title: 'book <1>.txt', subtitle: 'a & b',
    tables: [{ caption: 'Models', head: ['Model', 'Bits per byte'], rows: [['ttt <tiny>', '7.995']], numeric: [1] }],
    figures: [{ title: 'Perplexity', svg: '<svg class="main-svg" xmlns="http://www.w3.org/2000/svg" width="960" height="400"><g/></svg>' }],
    settings: [['Book', '/books/a "b".txt']],
    generatedBy: 'TTT Workbench',
  });

  it('is one self-contained page: inline style and SVG, nothing fetched, no script', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<style>');
    expect(html).not.toMatch(/<script|<link|\bsrc=/);
    // the SVG scales with the page: its fixed size becomes a viewBox
    expect(html).toContain('<svg viewBox="0 0 960 400" class="main-svg"');
  });

  it('escapes every text it is given', () => {
    expect(html).toContain('<h1>book &lt;1&gt;.txt</h1>');
    expect(html).toContain('<td>ttt &lt;tiny&gt;</td><td class="num">7.995</td>');
    expect(html).toContain('<dd>/books/a &quot;b&quot;.txt</dd>');
  });
});
