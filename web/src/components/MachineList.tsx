import { useVirtualizer } from '@tanstack/react-virtual';
import { type KeyboardEvent, memo, useCallback, useEffect, useRef, useState } from 'react';
import { STATUS_META } from '../status';
import type { Machine } from '../types';
import { StatusIcon } from './StatusIcon';

export interface MachineListProps {
  /** The machines to list, already filtered and sorted (search.ts' visibleMachines). */
  machines: readonly Machine[];
  selectedId: string | null;
  onSelect: (id: string) => void;
  /** Row height in pixels (rows are all alike, so 10,000 rows cost what the visible ones cost). */
  rowHeight: number;
}

/**
 * The machines beside the map, worst first: only the rows in view are in the document
 * (@tanstack/react-virtual). A listbox: Tab reaches the current row, arrows, Page Up/Down,
 * Home and End move, Enter or Space selects (and the map pans to the machine).
 */
export function MachineList({ machines, selectedId, onSelect, rowHeight }: MachineListProps) {
  const scroller = useRef<HTMLDivElement>(null);
  const [active, setActive] = useState(0);
  const focusAfterRender = useRef(false);
  const virtualizer = useVirtualizer({
    count: machines.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => rowHeight,
    overscan: 8,
    getItemKey: (index) => machines[index]?.id ?? index,
  });

  useEffect(() => {
    virtualizer.measure();
  }, [rowHeight, virtualizer]);

  // A machine selected elsewhere (the map, a link) becomes the current row and is scrolled to.
  const selectedIndex = selectedId === null ? -1 : machines.findIndex((m) => m.id === selectedId);
  useEffect(() => {
    if (selectedIndex < 0) return;
    setActive(selectedIndex);
    virtualizer.scrollToIndex(selectedIndex, { align: 'auto' });
    // Only when the selection changes, not when the list re-sorts under it.
  }, [selectedId]);

  const pick = useCallback(
    (index: number, id: string) => {
      setActive(index);
      onSelect(id);
    },
    [onSelect],
  );

  const current = Math.min(active, Math.max(0, machines.length - 1));

  useEffect(() => {
    if (!focusAfterRender.current) return;
    focusAfterRender.current = false;
    scroller.current?.querySelector<HTMLElement>(`[data-index="${current}"]`)?.focus();
  });

  function move(to: number) {
    if (machines.length === 0) return;
    const next = Math.max(0, Math.min(machines.length - 1, to));
    setActive(next);
    virtualizer.scrollToIndex(next, { align: 'auto' });
    focusAfterRender.current = true;
  }

  function onKeyDown(event: KeyboardEvent<HTMLDivElement>) {
    const page = Math.max(1, Math.floor((scroller.current?.clientHeight ?? rowHeight * 10) / rowHeight) - 1);
    const keys: Record<string, () => void> = {
      ArrowDown: () => move(current + 1),
      ArrowUp: () => move(current - 1),
      PageDown: () => move(current + page),
      PageUp: () => move(current - page),
      Home: () => move(0),
      End: () => move(machines.length - 1),
      Enter: () => {
        const m = machines[current];
        if (m !== undefined) onSelect(m.id);
      },
      ' ': () => {
        const m = machines[current];
        if (m !== undefined) onSelect(m.id);
      },
    };
    const action = keys[event.key];
    if (action === undefined) return;
    event.preventDefault();
    action();
  }

  if (machines.length === 0) {
    return <p className="mw-list-empty mw-muted">No machine matches.</p>;
  }
  return (
    <div
      ref={scroller}
      className="mw-list"
      role="listbox"
      aria-label="Machines, worst status first"
      data-testid="machine-list"
      onKeyDown={onKeyDown}
    >
      <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
        {virtualizer.getVirtualItems().map((item) => {
          const m = machines[item.index]!;
          return (
            <Row
              key={item.key}
              machine={m}
              index={item.index}
              top={item.start}
              height={rowHeight}
              selected={m.id === selectedId}
              tabbable={item.index === current}
              onPick={pick}
            />
          );
        })}
      </div>
    </div>
  );
}

interface RowProps {
  machine: Machine;
  index: number;
  top: number;
  height: number;
  selected: boolean;
  tabbable: boolean;
  onPick: (index: number, id: string) => void;
}

const Row = memo(function Row({ machine, index, top, height, selected, tabbable, onPick }: RowProps) {
  const label = STATUS_META[machine.status].label;
  return (
    <div
      role="option"
      aria-selected={selected}
      tabIndex={tabbable ? 0 : -1}
      data-index={index}
      data-machine-id={machine.id}
      data-status={machine.status}
      data-testid="machine-row"
      className={`mw-row mw-status-${machine.status}${selected ? ' mw-selected' : ''}`}
      style={{ position: 'absolute', top: 0, left: 0, right: 0, height, transform: `translateY(${top}px)` }}
      onClick={() => onPick(index, machine.id)}
      title={machine.reason ?? undefined}
    >
      <StatusIcon status={machine.status} size={20} />
      <span className="mw-row-name">{machine.name}</span>
      <span className="mw-row-status">{label}</span>
      {machine.site !== null && <span className="mw-row-site">{machine.site}</span>}
    </div>
  );
});
