/**
 * A run's report as one self-contained HTML file: inline CSS, charts as inline SVG, tables as HTML. No script
 * and no external reference, so it opens offline in any browser and can be mailed or archived as it is.
 */

export interface ReportTable {
  readonly caption: string;
  readonly head: readonly string[];
  readonly rows: readonly (readonly string[])[];
  /** Columns (by index) holding numbers, right-aligned. */
  readonly numeric?: readonly number[];
}

export interface ReportFigure {
  readonly title: string;
  readonly caption?: string;
  /** An `<svg>…</svg>` element as Plotly exports it. */
  readonly svg: string;
}

export interface ReportContent {
  readonly title: string;
  readonly subtitle: string;
  readonly tables: readonly ReportTable[];
  readonly figures: readonly ReportFigure[];
  readonly settings: readonly (readonly [string, string])[];
  readonly generatedBy: string;
}

export const escapeHtml = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const css = `
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 0; background: #f6f7f9; }
main { max-width: 1000px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.subtitle, .caption, footer { color: #5b6470; } .caption { font-size: 13px; margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #dfe3e8; font-size: 13px; }
th, td { padding: 6px 10px; border-bottom: 1px solid #eef0f3; text-align: left; } th { background: #fafbfc; color: #5b6470; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 0 0 16px; background: #fff; border: 1px solid #dfe3e8; border-radius: 8px; padding: 12px; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-weight: 600; margin-bottom: 4px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; background: #fff; border: 1px solid #dfe3e8; padding: 12px; margin: 0; }
dt { color: #5b6470; } dd { margin: 0; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; overflow-wrap: anywhere; }
footer { margin-top: 32px; font-size: 12px; }`;

/** Plotly's SVG at its natural aspect ratio, scaling with the page (its fixed width/height become a viewBox). */
function responsiveSvg(svg: string): string {
  const open = /^<svg\b[^>]*>/.exec(svg.trim())?.[0];
  if (!open) return '';
  const width = /\bwidth="(\d+(?:\.\d+)?)"/.exec(open)?.[1];
  const height = /\bheight="(\d+(?:\.\d+)?)"/.exec(open)?.[1];
  const viewBox = width && height && !/viewBox=/.test(open) ? open.replace(/^<svg\b/, `<svg viewBox="0 0 ${width} ${height}"`) : open;
  return viewBox + svg.trim().slice(open.length);
}

function table(t: ReportTable): string {
  const numeric = new Set(t.numeric ?? []);
  const head = t.head.map((h) => `<th scope="col">${escapeHtml(h)}</th>`).join('');
  const rows = t.rows.map((r) => `<tr>${r.map((c, i) => `<td${numeric.has(i) ? ' class="num"' : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<h2>${escapeHtml(t.caption)}</h2>\n<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${rows}\n</tbody>\n</table>`;
}

export function reportHtml(content: ReportContent): string {
  const figures = content.figures.map((f) => [
    '<figure>',
    `<figcaption>${escapeHtml(f.title)}</figcaption>`,
    f.caption ? `<p class="caption">${escapeHtml(f.caption)}</p>` : '',
    responsiveSvg(f.svg),
    '</figure>',
  ].filter(Boolean).join('\n'));
  const settings = content.settings.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(content.title)}</title>
<style>${css}</style>
</head>
<body>
<main>
<h1>${escapeHtml(content.title)}</h1>
<p class="subtitle">${escapeHtml(content.subtitle)}</p>
${content.tables.map(table).join('\n')}
<h2>Charts</h2>
${figures.join('\n')}
<h2>Settings</h2>
<dl>
${settings}
</dl>
<footer>${escapeHtml(content.generatedBy)}</footer>
</main>
</body>
</html>
`;
}
